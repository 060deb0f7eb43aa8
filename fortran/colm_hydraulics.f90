! Soil hydraulic functions: water retention psi(theta), its inverse theta(psi), and hydraulic conductivity K(theta),
! with derivatives, for one soil layer described by its parameter vector sp(NSP) (indices SP_* in colm_layout).
!
! hydr_model = 1: Campbell (1974) / Clapp and Hornberger (1978), the CoLM2014 form
!   s = theta / theta_s,  psi = psi_s s^(-b),  K = Ksat s^(2b+3)
! hydr_model = 2: van Genuchten (1980) retention with Mualem (1976) conductivity, the CoLM202X default
!   Se = (theta - theta_r) / (theta_s - theta_r),  Se = [1 + (alpha |psi|)^n]^(-m),  m = 1 - 1/n,
!   K = Ksat Se^L [1 - (1 - Se^(1/m))^m]^2
!
! Frozen soil (CoLM2014 / CLM4 convention): the matric potential of the liquid follows from the liquid content
! alone ("freezing is like drying"; liquid beyond the pore space left by ice is ignored); conductivity uses the
! total (liquid + ice) saturation times the ice impedance 10^(-6 f_ice), f_ice = theta_ice / theta_s.
! Matric potentials are in mm of water (<= 0 in unsaturated soil) and are bounded below by smpmin.
module colm_hydraulics
  use colm_const, only: r8, ik, smpmin
  use colm_layout, only: NSP, SP_THETA_S, SP_THETA_R, SP_KSAT, SP_PSI_S, SP_BSW, SP_ALPHA_VG, SP_N_VG, SP_L_VG
  implicit none
  private
  public :: HYDR_CAMPBELL, HYDR_VG
  public :: soil_matric_potential, soil_conductivity, soil_theta_from_psi, ice_impedance, soil_psi_saturation

  integer(ik), parameter :: HYDR_CAMPBELL = 1    ! Campbell / Clapp-Hornberger switch value (-)
  integer(ik), parameter :: HYDR_VG = 2          ! van Genuchten-Mualem switch value (-)
  real(r8), parameter :: e_ice = 6.0_r8          ! ice impedance exponent, CoLM2014 / CLM4 (-)
  real(r8), parameter :: w_min = 1.0e-14_r8      ! smallest 1 - Se^(1/m) used in the Mualem derivative (-)

contains

  ! exp(y) - 1 without cancellation for small |y| (needed for 1 - Se^(1/m) near saturation).
  pure real(r8) function expm1_r8(y) result(e)
    real(r8), intent(in) :: y                    ! argument (-)
    if (abs(y) < 1.0e-5_r8) then
      e = y * (1.0_r8 + y * (0.5_r8 + y / 6.0_r8))
    else
      e = exp(y) - 1.0_r8
    end if
  end function expm1_r8

  ! Ice impedance factor on conductivity, 10^(-6 theta_ice/theta_s) (CoLM2014 / CLM4).
  pure real(r8) function ice_impedance(vol_ice, theta_s) result(imped)
    real(r8), intent(in) :: vol_ice              ! volumetric ice content (m3 m-3)
    real(r8), intent(in) :: theta_s              ! porosity (m3 m-3)
    imped = 10.0_r8**(-e_ice * min(1.0_r8, max(0.0_r8, vol_ice) / theta_s))
  end function ice_impedance

  ! Matric potential at which the unfrozen soil becomes saturated (air entry): psi_s (Campbell) or 0 (vG).
  pure real(r8) function soil_psi_saturation(hydr_model, sp) result(psat)
    integer(ik), intent(in) :: hydr_model        ! 1 Campbell, 2 van Genuchten-Mualem (-)
    real(r8), intent(in) :: sp(NSP)              ! soil parameters of the layer, SP_* (mixed)
    if (hydr_model == HYDR_VG) then
      psat = 0.0_r8
    else
      psat = sp(SP_PSI_S)
    end if
  end function soil_psi_saturation

  ! Matric potential of the liquid water and its derivative with respect to the liquid content.
  ! Liquid is limited to the pore space left by ice; smp >= smpmin; dsmp_dtheta = 0 where smp is clipped
  ! (at smpmin or at saturation).
  pure subroutine soil_matric_potential(hydr_model, sp, vol_liq, vol_ice, smp, dsmp_dtheta)
    integer(ik), intent(in) :: hydr_model        ! 1 Campbell, 2 van Genuchten-Mualem (-)
    real(r8), intent(in) :: sp(NSP)              ! soil parameters of the layer, SP_* (mixed)
    real(r8), intent(in) :: vol_liq              ! volumetric liquid water content (m3 m-3)
    real(r8), intent(in) :: vol_ice              ! volumetric ice content (m3 m-3)
    real(r8), intent(out) :: smp                 ! matric potential (mm, <= 0)
    real(r8), intent(out) :: dsmp_dtheta         ! d smp / d vol_liq (mm per m3 m-3)
    real(r8) :: ths, thr, theta                  ! porosity, residual content, usable liquid content (m3 m-3)
    real(r8) :: s, s_min                         ! relative saturation and its value at smpmin (-)
    real(r8) :: b, psis                          ! Campbell exponent (-) and air-entry potential (mm)
    real(r8) :: alpha, n, m                      ! vG alpha (mm-1), n (-), m (-)
    real(r8) :: x                                ! Se^(-1/m) - 1 (-)

    ths = sp(SP_THETA_S)
    theta = min(vol_liq, max(ths - max(vol_ice, 0.0_r8), 0.0_r8))
    if (hydr_model == HYDR_VG) then
      thr = sp(SP_THETA_R)
      alpha = sp(SP_ALPHA_VG)
      n = sp(SP_N_VG)
      m = 1.0_r8 - 1.0_r8 / n
      s = (theta - thr) / (ths - thr)
      ! Se at smpmin, from Se = (1 + (alpha |smpmin|)^n)^(-m), in logs to avoid overflow
      s_min = exp(-m * (n * log(alpha * abs(smpmin)) + log(1.0_r8 + (alpha * abs(smpmin))**(-n))))
      if (s >= 1.0_r8) then
        smp = 0.0_r8
        dsmp_dtheta = 0.0_r8
      else if (s <= s_min) then
        smp = smpmin
        dsmp_dtheta = 0.0_r8
      else
        x = expm1_r8(-log(s) / m)
        smp = -(x**(1.0_r8 / n)) / alpha
        dsmp_dtheta = x**(1.0_r8 / n - 1.0_r8) * s**(-1.0_r8 / m - 1.0_r8) / (alpha * n * m * (ths - thr))
      end if
    else
      b = sp(SP_BSW)
      psis = sp(SP_PSI_S)
      s = theta / ths
      s_min = (smpmin / psis)**(-1.0_r8 / b)
      if (s >= 1.0_r8) then
        smp = psis
        dsmp_dtheta = 0.0_r8
      else if (s <= s_min) then
        smp = smpmin
        dsmp_dtheta = 0.0_r8
      else
        smp = psis * s**(-b)
        dsmp_dtheta = -b * smp / theta
      end if
    end if
  end subroutine soil_matric_potential

  ! Liquid water content in equilibrium with matric potential smp (inverse of soil_matric_potential) and the
  ! specific moisture capacity d theta / d smp. The content is capped at the pore space left by ice, where the
  ! capacity is 0 (the layer is "full"); smp below smpmin is treated as smpmin.
  pure subroutine soil_theta_from_psi(hydr_model, sp, smp, vol_ice, vol_liq, dtheta_dpsi)
    integer(ik), intent(in) :: hydr_model        ! 1 Campbell, 2 van Genuchten-Mualem (-)
    real(r8), intent(in) :: sp(NSP)              ! soil parameters of the layer, SP_* (mixed)
    real(r8), intent(in) :: smp                  ! matric potential (mm)
    real(r8), intent(in) :: vol_ice              ! volumetric ice content (m3 m-3)
    real(r8), intent(out) :: vol_liq             ! volumetric liquid water content (m3 m-3)
    real(r8), intent(out) :: dtheta_dpsi         ! d vol_liq / d smp (m3 m-3 mm-1)
    real(r8) :: ths, thr, h, cap                 ! porosity, residual (m3 m-3), potential (mm), liquid cap (m3 m-3)
    real(r8) :: b, psis                          ! Campbell exponent (-) and air-entry potential (mm)
    real(r8) :: alpha, n, m, x, xn, se           ! vG alpha (mm-1), n, m, alpha|h|, (alpha|h|)^n, Se (-)

    ths = sp(SP_THETA_S)
    cap = max(ths - max(vol_ice, 0.0_r8), 0.0_r8)
    h = max(smp, smpmin)
    if (hydr_model == HYDR_VG) then
      thr = sp(SP_THETA_R)
      if (h >= 0.0_r8) then
        vol_liq = ths
        dtheta_dpsi = 0.0_r8
      else
        alpha = sp(SP_ALPHA_VG)
        n = sp(SP_N_VG)
        m = 1.0_r8 - 1.0_r8 / n
        x = -alpha * h
        xn = x**n
        se = (1.0_r8 + xn)**(-m)
        vol_liq = thr + (ths - thr) * se
        dtheta_dpsi = (ths - thr) * m * n * alpha * (xn / x) * se / (1.0_r8 + xn)
      end if
    else
      b = sp(SP_BSW)
      psis = sp(SP_PSI_S)
      if (h >= psis) then
        vol_liq = ths
        dtheta_dpsi = 0.0_r8
      else
        vol_liq = ths * (h / psis)**(-1.0_r8 / b)
        dtheta_dpsi = -vol_liq / (b * h)
      end if
    end if
    if (vol_liq >= cap) then
      vol_liq = cap
      dtheta_dpsi = 0.0_r8
    end if
  end subroutine soil_theta_from_psi

  ! Hydraulic conductivity and its derivative with respect to the liquid content. The relative conductivity uses
  ! the total (liquid + ice) saturation and is multiplied by the ice impedance (CLM4 / CoLM2014).
  pure subroutine soil_conductivity(hydr_model, sp, vol_liq, vol_ice, hk, dhk_dtheta)
    integer(ik), intent(in) :: hydr_model        ! 1 Campbell, 2 van Genuchten-Mualem (-)
    real(r8), intent(in) :: sp(NSP)              ! soil parameters of the layer, SP_* (mixed)
    real(r8), intent(in) :: vol_liq              ! volumetric liquid water content (m3 m-3)
    real(r8), intent(in) :: vol_ice              ! volumetric ice content (m3 m-3)
    real(r8), intent(out) :: hk                  ! hydraulic conductivity (mm s-1)
    real(r8), intent(out) :: dhk_dtheta          ! d hk / d vol_liq (mm s-1 per m3 m-3)
    real(r8) :: ths, thr, ksat, imped            ! porosity, residual (m3 m-3), Ksat (mm s-1), impedance (-)
    real(r8) :: s, b                             ! relative saturation (-), Campbell exponent (-)
    real(r8) :: n, m, l, u, w, wm, f, dfds, lns  ! Mualem terms: n, m, L, Se^(1/m), 1-u, w^m, 1-w^m, df/dSe, ln Se

    ths = sp(SP_THETA_S)
    ksat = sp(SP_KSAT)
    imped = ice_impedance(vol_ice, ths)
    if (hydr_model == HYDR_VG) then
      thr = sp(SP_THETA_R)
      s = (max(vol_liq, 0.0_r8) + max(vol_ice, 0.0_r8) - thr) / (ths - thr)
      if (s <= 0.0_r8) then
        hk = 0.0_r8
        dhk_dtheta = 0.0_r8
        return
      end if
      n = sp(SP_N_VG)
      m = 1.0_r8 - 1.0_r8 / n
      l = sp(SP_L_VG)
      if (s >= 1.0_r8) then
        hk = imped * ksat
        dhk_dtheta = 0.0_r8
        return
      end if
      lns = log(s)
      u = exp(lns / m)
      w = max(-expm1_r8(lns / m), w_min)
      wm = w**m
      f = 1.0_r8 - wm
      hk = imped * ksat * exp(l * lns) * f * f
      dfds = (wm / w) * u / s
      dhk_dtheta = imped * ksat * exp(l * lns) * f * (l * f / s + 2.0_r8 * dfds) / (ths - thr)
    else
      b = sp(SP_BSW)
      s = min(1.0_r8, (max(vol_liq, 0.0_r8) + max(vol_ice, 0.0_r8)) / ths)
      if (s <= 0.0_r8) then
        hk = 0.0_r8
        dhk_dtheta = 0.0_r8
      else if (s >= 1.0_r8) then
        hk = imped * ksat
        dhk_dtheta = 0.0_r8
      else
        hk = imped * ksat * s**(2.0_r8 * b + 3.0_r8)
        dhk_dtheta = (2.0_r8 * b + 3.0_r8) * hk / (s * ths)
      end if
    end if
  end subroutine soil_conductivity
end module colm_hydraulics
