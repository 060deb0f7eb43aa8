! Soil hydraulic functions: water retention psi(theta), its inverse theta(psi), and hydraulic conductivity, with
! derivatives, for one soil layer described by its parameter vector sp(NSP) (indices SP_* in colm_layout).
!
! hydr_model = 1: Campbell (1974) / Clapp and Hornberger (1978), the CoLM2014 form
!   s = theta / theta_s,  psi = psi_s s^(-b)  (psi_s = SP_PSI_S < 0),  K = Ksat s^(2b+3)
! hydr_model = 2: van Genuchten (1980) retention with Mualem (1976) conductivity in the air-entry form of
!   Ippisch, Vogel and Bastian (2006, AWR 29, 1780-1789) used by CoLM202X (MOD_Hydro_SoilFunction), with CoLM202X's
!   air-entry value psi_e = -1 mm:
!   S*(psi) = [1 + (alpha |psi|)^n]^(-m),  m = 1 - 1/n,   Sc = S*(psi_e),
!   Se = (theta - theta_r) / (theta_s - theta_r) = S*(psi) / Sc  for psi < psi_e,  1 above,
!   K = Ksat Se^L [ (1 - (1 - (Se Sc)^(1/m))^m) / (1 - (1 - Sc^(1/m))^m) ]^2.
!   As psi_e -> 0 this is the classic van Genuchten-Mualem model; with psi_e = -1 mm retention differs from it by
!   less than 0.1 % of theta_s - theta_r for alpha <= 0.02 mm-1, while dK/dpsi stays bounded at saturation
!   (it is unbounded for n < 2 in the classic model, Vogel et al. 2001, AWR 24, 133-144).
!
! Frozen soil (CoLM2014 convention): matric potential and relative conductivity follow from the liquid content
! alone ("freezing is like drying"; liquid beyond the pore space left by ice is ignored), and the conductivity is
! multiplied by the ice impedance 10^(-6 f_ice), f_ice = theta_ice / theta_s.
! Matric potentials are in mm of water (<= 0) and are bounded below by smpmin.
module colm_hydraulics
  use colm_const, only: r8, ik, smpmin
  use colm_layout, only: NSP, SP_THETA_S, SP_THETA_R, SP_KSAT, SP_PSI_S, SP_BSW, SP_ALPHA_VG, SP_N_VG, SP_L_VG
  implicit none
  private
  public :: HYDR_CAMPBELL, HYDR_VG, PSI_E_VG
  public :: soil_matric_potential, soil_conductivity, soil_theta_from_psi, soil_state_psi
  public :: ice_impedance, soil_psi_saturation

  integer(ik), parameter :: HYDR_CAMPBELL = 1    ! Campbell / Clapp-Hornberger switch value (-)
  integer(ik), parameter :: HYDR_VG = 2          ! van Genuchten-Mualem switch value (-)
  real(r8), parameter :: PSI_E_VG = -1.0_r8      ! air-entry potential of the vG-Mualem form, CoLM202X (mm)
  real(r8), parameter :: e_ice = 6.0_r8          ! ice impedance exponent, CoLM2014 / CLM4 (-)

contains

  ! exp(y) - 1 without cancellation for small |y| (needed for 1 - S^(1/m) near saturation).
  pure real(r8) function expm1_r8(y) result(e)
    real(r8), intent(in) :: y                    ! argument (-)
    if (abs(y) < 1.0e-5_r8) then
      e = y * (1.0_r8 + y * (0.5_r8 + y / 6.0_r8))
    else
      e = exp(y) - 1.0_r8
    end if
  end function expm1_r8

  ! log(1 + y) without cancellation for small |y|.
  pure real(r8) function log1p_r8(y) result(e)
    real(r8), intent(in) :: y                    ! argument, > -1 (-)
    if (abs(y) < 1.0e-4_r8) then
      e = y * (1.0_r8 - y * (0.5_r8 - y * (1.0_r8 / 3.0_r8 - 0.25_r8 * y)))
    else
      e = log(1.0_r8 + y)
    end if
  end function log1p_r8

  ! 1 - (1 - S*^(1/m))^m of the Mualem conductivity, written as 1 - x^(n-1) S* near saturation (x <= 1) and as
  ! -expm1(-m log1p(x^-n)) in dry soil, where 1 - x^(n-1) S* would lose all its digits (x = alpha |psi|).
  pure real(r8) function mualem_f(x, n) result(f)
    real(r8), intent(in) :: x                    ! alpha |psi| (-)
    real(r8), intent(in) :: n                    ! van Genuchten n (-)
    if (x <= 1.0_r8) then
      f = 1.0_r8 - x**(n - 1.0_r8) * (1.0_r8 + x**n)**(-(1.0_r8 - 1.0_r8 / n))
    else
      f = -expm1_r8(-(1.0_r8 - 1.0_r8 / n) * log1p_r8(x**(-n)))
    end if
  end function mualem_f

  ! Ice impedance factor on conductivity, 10^(-6 theta_ice/theta_s) (CoLM2014 / CLM4).
  pure real(r8) function ice_impedance(vol_ice, theta_s) result(imped)
    real(r8), intent(in) :: vol_ice              ! volumetric ice content (m3 m-3)
    real(r8), intent(in) :: theta_s              ! porosity (m3 m-3)
    imped = 10.0_r8**(-e_ice * min(1.0_r8, max(0.0_r8, vol_ice) / theta_s))
  end function ice_impedance

  ! Matric potential at which the unfrozen soil becomes saturated (air entry): psi_s (Campbell) or psi_e (vG).
  pure real(r8) function soil_psi_saturation(hydr_model, sp) result(psat)
    integer(ik), intent(in) :: hydr_model        ! 1 Campbell, 2 van Genuchten-Mualem (-)
    real(r8), intent(in) :: sp(NSP)              ! soil parameters of the layer, SP_* (mixed)
    if (hydr_model == HYDR_VG) then
      psat = PSI_E_VG
    else
      psat = sp(SP_PSI_S)
    end if
  end function soil_psi_saturation

  ! Matric potential of the liquid water and its derivative with respect to the liquid content.
  ! Liquid is limited to the pore space left by ice; smp >= smpmin; dsmp_dtheta = 0 where smp is clipped
  ! (at smpmin, or at saturation where smp is the air-entry value).
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
    real(r8) :: alpha, n, m, sc, ss, x           ! vG alpha (mm-1), n, m, Sc, S* = Se Sc, S*^(-1/m) - 1 (-)

    ths = sp(SP_THETA_S)
    theta = min(vol_liq, max(ths - max(vol_ice, 0.0_r8), 0.0_r8))
    if (hydr_model == HYDR_VG) then
      thr = sp(SP_THETA_R)
      alpha = sp(SP_ALPHA_VG)
      n = sp(SP_N_VG)
      m = 1.0_r8 - 1.0_r8 / n
      sc = (1.0_r8 + (-alpha * PSI_E_VG)**n)**(-m)
      s = (theta - thr) / (ths - thr)
      ! S* at smpmin, in logs to avoid overflow
      s_min = exp(-m * (n * log(alpha * abs(smpmin)) + log(1.0_r8 + (alpha * abs(smpmin))**(-n)))) / sc
      if (s >= 1.0_r8) then
        smp = PSI_E_VG
        dsmp_dtheta = 0.0_r8
      else if (s <= s_min) then
        smp = smpmin
        dsmp_dtheta = 0.0_r8
      else
        ss = s * sc
        x = expm1_r8(-log(ss) / m)
        smp = -(x**(1.0_r8 / n)) / alpha
        dsmp_dtheta = sc * x**(1.0_r8 / n - 1.0_r8) * ss**(-1.0_r8 / m - 1.0_r8) / (alpha * n * m * (ths - thr))
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
    real(r8) :: hk, dhk                          ! conductivity (mm s-1) and dK/dpsi (s-1), not used here
    call soil_state_psi(hydr_model, sp, smp, vol_ice, vol_liq, dtheta_dpsi, hk, dhk)
  end subroutine soil_theta_from_psi

  ! Liquid content, capacity, conductivity and dK/dpsi at matric potential smp, from closed forms in smp (no
  ! round trip through theta, so K is accurate close to saturation). Capped at the pore space left by ice: above
  ! the cap the layer is full, with zero capacity and the conductivity of the cap.
  pure subroutine soil_state_psi(hydr_model, sp, smp, vol_ice, vol_liq, dtheta_dpsi, hk, dhk_dpsi)
    integer(ik), intent(in) :: hydr_model        ! 1 Campbell, 2 van Genuchten-Mualem (-)
    real(r8), intent(in) :: sp(NSP)              ! soil parameters of the layer, SP_* (mixed)
    real(r8), intent(in) :: smp                  ! matric potential (mm)
    real(r8), intent(in) :: vol_ice              ! volumetric ice content (m3 m-3)
    real(r8), intent(out) :: vol_liq             ! liquid content (m3 m-3)
    real(r8), intent(out) :: dtheta_dpsi         ! d vol_liq / d smp (m3 m-3 mm-1)
    real(r8), intent(out) :: hk                  ! hydraulic conductivity (mm s-1)
    real(r8), intent(out) :: dhk_dpsi            ! d hk / d smp (s-1)
    real(r8) :: ths, thr, cap, h, hcap, imped    ! porosity, residual, cap (m3 m-3), potentials (mm), impedance (-)
    real(r8) :: b, psis, s                       ! Campbell exponent (-), air entry (mm), theta / theta_s (-)
    real(r8) :: alpha, n, m, sc, fc, x, xn       ! vG alpha (mm-1), n, m, Sc, Mualem normaliser, alpha|h|, x^n (-)
    real(r8) :: sstar, se, f, dsdh, dwdh         ! S*, Se, Mualem factor 1 - x^(n-1) S*, dS*/dh, d(1-f)/dh (mm-1)
    real(r8) :: dummy                            ! unused derivative (-)

    ths = sp(SP_THETA_S)
    cap = max(ths - max(vol_ice, 0.0_r8), 0.0_r8)
    imped = ice_impedance(vol_ice, ths)
    h = max(smp, smpmin)
    if (hydr_model == HYDR_VG) then
      thr = sp(SP_THETA_R)
      alpha = sp(SP_ALPHA_VG)
      n = sp(SP_N_VG)
      m = 1.0_r8 - 1.0_r8 / n
      sc = (1.0_r8 + (-alpha * PSI_E_VG)**n)**(-m)
      fc = mualem_f(-alpha * PSI_E_VG, n)
      if (cap < ths) then
        ! the ice cap: the potential at which the liquid fills the pore space left by ice
        if (cap <= thr) then
          vol_liq = cap
          dtheta_dpsi = 0.0_r8
          hk = 0.0_r8
          dhk_dpsi = 0.0_r8
          return
        end if
        call soil_matric_potential(hydr_model, sp, cap, 0.0_r8, hcap, dummy)
        h = min(h, hcap)
      end if
      if (h >= PSI_E_VG) then
        vol_liq = min(ths, cap)
        dtheta_dpsi = 0.0_r8
        hk = imped * sp(SP_KSAT)
        dhk_dpsi = 0.0_r8
        return
      end if
      x = -alpha * h
      xn = x**n
      sstar = (1.0_r8 + xn)**(-m)
      se = sstar / sc
      f = mualem_f(x, n)
      vol_liq = min(thr + (ths - thr) * se, cap)
      hk = imped * sp(SP_KSAT) * se**sp(SP_L_VG) * (f / fc)**2
      if (h < max(smp, smpmin)) then
        ! held at the ice cap
        dtheta_dpsi = 0.0_r8
        dhk_dpsi = 0.0_r8
        return
      end if
      ! dS*/dh with dx/dh = -alpha; w = x^(n-1) S* = 1 - f has dw/dh = -alpha (n-1) x^(n-2) S* / (1 + x^n)
      dsdh = m * n * alpha * (xn / x) * sstar / (1.0_r8 + xn)
      dwdh = -alpha * (n - 1.0_r8) * (xn / x) / x * sstar / (1.0_r8 + xn)
      dtheta_dpsi = (ths - thr) * dsdh / sc
      dhk_dpsi = hk * (sp(SP_L_VG) * dsdh / sstar - 2.0_r8 * dwdh / f)
    else
      b = sp(SP_BSW)
      psis = sp(SP_PSI_S)
      if (h >= psis) then
        s = 1.0_r8
        dtheta_dpsi = 0.0_r8
      else
        s = (h / psis)**(-1.0_r8 / b)
        dtheta_dpsi = -ths * s / (b * h)
      end if
      vol_liq = ths * s
      if (vol_liq >= cap) then
        vol_liq = cap
        s = cap / ths
        dtheta_dpsi = 0.0_r8
      end if
      hk = imped * sp(SP_KSAT) * s**(2.0_r8 * b + 3.0_r8)
      dhk_dpsi = (2.0_r8 * b + 3.0_r8) * hk / max(vol_liq, tiny(1.0_r8)) * dtheta_dpsi
    end if
  end subroutine soil_state_psi

  ! Hydraulic conductivity and its derivative with respect to the liquid content. The relative conductivity uses
  ! the liquid saturation and is multiplied by the ice impedance (CoLM2014).
  pure subroutine soil_conductivity(hydr_model, sp, vol_liq, vol_ice, hk, dhk_dtheta)
    integer(ik), intent(in) :: hydr_model        ! 1 Campbell, 2 van Genuchten-Mualem (-)
    real(r8), intent(in) :: sp(NSP)              ! soil parameters of the layer, SP_* (mixed)
    real(r8), intent(in) :: vol_liq              ! volumetric liquid water content (m3 m-3)
    real(r8), intent(in) :: vol_ice              ! volumetric ice content (m3 m-3)
    real(r8), intent(out) :: hk                  ! hydraulic conductivity (mm s-1)
    real(r8), intent(out) :: dhk_dtheta          ! d hk / d vol_liq (mm s-1 per m3 m-3)
    real(r8) :: ths, thr, ksat, imped            ! porosity, residual (m3 m-3), Ksat (mm s-1), impedance (-)
    real(r8) :: s, b                             ! relative saturation (-), Campbell exponent (-)
    real(r8) :: n, m, l, sc, fc, ss, lns, u, w, wm, f, dfds ! Mualem terms (-)

    ths = sp(SP_THETA_S)
    ksat = sp(SP_KSAT)
    imped = ice_impedance(vol_ice, ths)
    if (hydr_model == HYDR_VG) then
      thr = sp(SP_THETA_R)
      s = (min(max(vol_liq, 0.0_r8), max(ths - max(vol_ice, 0.0_r8), 0.0_r8)) - thr) / (ths - thr)
      if (s <= 0.0_r8) then
        hk = 0.0_r8
        dhk_dtheta = 0.0_r8
        return
      end if
      if (s >= 1.0_r8) then
        hk = imped * ksat
        dhk_dtheta = 0.0_r8
        return
      end if
      n = sp(SP_N_VG)
      m = 1.0_r8 - 1.0_r8 / n
      l = sp(SP_L_VG)
      sc = (1.0_r8 + (-sp(SP_ALPHA_VG) * PSI_E_VG)**n)**(-m)
      fc = mualem_f(-sp(SP_ALPHA_VG) * PSI_E_VG, n)
      ss = s * sc
      lns = log(ss)
      u = exp(lns / m)
      w = -expm1_r8(lns / m)
      ! f = 1 - (1 - u)^m without cancellation in dry soil (u small)
      wm = exp(m * log1p_r8(-u))
      f = -expm1_r8(m * log1p_r8(-u))
      hk = imped * ksat * s**l * (f / fc)**2
      dfds = (wm / w) * u / ss * sc
      dhk_dtheta = imped * ksat * s**l * (f / fc) * (l * (f / fc) / s + 2.0_r8 * dfds / fc) / (ths - thr)
    else
      b = sp(SP_BSW)
      s = min(1.0_r8, min(max(vol_liq, 0.0_r8), max(ths - max(vol_ice, 0.0_r8), 0.0_r8)) / ths)
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
